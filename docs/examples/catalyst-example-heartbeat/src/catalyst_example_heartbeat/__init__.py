"""A worked example of a Catalyst plugin: an event source that publishes heartbeats."""
