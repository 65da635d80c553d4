"""swift-lmdeploy: LMDeploy (TurboMind or PyTorch backend) as a Swift inference engine (`--engine lmdeploy`)."""
