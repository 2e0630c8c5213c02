"""The official WIDER FACE Easy/Medium/Hard evaluation protocol."""
