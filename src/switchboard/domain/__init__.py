"""The one domain model shared by every dialect: entities, services and domain errors."""
