"""HQ side: the consumer that stores what devices publish (``poselift-hq``)."""
