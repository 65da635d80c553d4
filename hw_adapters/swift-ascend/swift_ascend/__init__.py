"""swift-ascend: the Huawei Ascend NPU hardware runtime plugin (torch-npu)."""
