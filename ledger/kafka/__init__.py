"""Kafka: topics and clients, the Avro codec and its packaged schemas, evolution checks, the relay, the bundled broker."""
