"""Local services: the Apache Kafka broker and the PostgreSQL server, and the demo."""
