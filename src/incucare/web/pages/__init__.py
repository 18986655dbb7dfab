"""Server-rendered pages (zh-CN first, English switch)."""
