"""The registry of platform adapters. A new marketplace is one adapter and one line here."""

from importlib import import_module

_ADAPTERS = {
    "shopify": "channels_app.connectors.shopify.ShopifyConnector",
    "amazon": "channels_app.connectors.amazon.AmazonConnector",
    "tiktok": "channels_app.connectors.tiktok.TikTokConnector",
}


def connector_class(kind: str):
    module, _, name = _ADAPTERS[kind].rpartition(".")
    return getattr(import_module(module), name)


def connector_for(channel):
    return connector_class(channel.kind)(channel)
