"""Read models: pure event -> change logic, shared by the embedded and Kafka modes."""
