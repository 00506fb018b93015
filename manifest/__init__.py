"""The Slack app manifest (slack.yaml), shipped with the package: its bot scopes are the
scopes the OAuth install asks for."""
