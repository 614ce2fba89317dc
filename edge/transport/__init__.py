"""MQTT transport: strict message models, the durable outbox, the pose stream, commands, the publisher.

Importing this package is cheap; paho is imported by :mod:`edge.transport.publisher` only.
"""
