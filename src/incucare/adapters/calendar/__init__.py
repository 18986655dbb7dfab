"""Calendar data from outside the domain: China's statutory holidays and adjusted working days (调休)."""
