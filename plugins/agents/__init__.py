"""The agent SDK: what plugin authors import (the livekit-agents API)."""
