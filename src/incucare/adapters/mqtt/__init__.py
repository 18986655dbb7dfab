"""MQTT transport for telemetry: the ingest subscriber and the simulator's publisher (paho-mqtt 2)."""
