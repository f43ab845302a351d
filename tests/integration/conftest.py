"""Integration tests use the broker fixtures of tests/kafka_fixtures.py (registered in tests/conftest.py)."""
