"""tsunagu notifications: events, scheduling and delivery channels."""
