"""A protocol-level Slack for tests and the local workspace: the real slack_sdk and
slack_bolt clients talk to it over loopback (Web API, Socket Mode, Events API).

    with SlackFake() as fake:
        client = WebClient(token=fake.bot_token, base_url=fake.api_url)
"""

from heron.testing.slack.activity import AssistantThread
from heron.testing.slack.delivery import Delivery, DeliveryMode, Transport
from heron.testing.slack.fake import SlackFake
from heron.testing.slack.methods_chat import AssistantStatus
from heron.testing.slack.model import AppIdentity, Channel, ChannelKind, Message, User
from heron.testing.slack.setup import FileSpec
from heron.testing.slack.web_api import ApiCall

__all__ = [
    "ApiCall",
    "AppIdentity",
    "AssistantStatus",
    "AssistantThread",
    "Channel",
    "ChannelKind",
    "Delivery",
    "DeliveryMode",
    "FileSpec",
    "Message",
    "SlackFake",
    "Transport",
    "User",
]
