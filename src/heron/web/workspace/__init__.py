"""The local workspace: try Heron with no Slack app. A Slack-like page served by
`heron run`, backed by Heron's own Slack fake, which Heron reaches through its real Socket
Mode and Web API code paths."""

from heron.web.workspace.service import LocalWorkspace, local_workspace_enabled

__all__ = ["LocalWorkspace", "local_workspace_enabled"]
