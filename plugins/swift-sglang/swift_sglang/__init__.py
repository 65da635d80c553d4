"""swift-sglang: SGLang's offline engine as a Swift inference engine (`--engine sglang`)."""
