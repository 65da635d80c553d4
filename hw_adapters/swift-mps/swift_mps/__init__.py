"""swift-mps: the Apple MPS (Metal) hardware runtime plugin."""
