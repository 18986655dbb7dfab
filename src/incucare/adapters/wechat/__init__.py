"""WeChat Official Account (微信公众号) message push: the wire protocol and the intake of pushed messages."""
