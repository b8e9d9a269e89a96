"""syndicator: a podcast feed aggregator and syndication bot."""

__version__ = "0.1.0"
