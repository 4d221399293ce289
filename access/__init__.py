"""API tokens and the authentication shared by the JSON API and websockets."""
