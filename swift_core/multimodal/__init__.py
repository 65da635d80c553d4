"""Images for vision-language families (Qwen2-VL, Qwen2.5-VL): one path for training, inference
and serving.

A row's text is rendered by the family's chat template as for any model; the template writes one
`<|image_pad|>` per image. This package opens the images (`media`), resizes them with the one
resize function (`resize`, `--max_pixels`/`--min_pixels`), turns them into the model's inputs
with the folder's image processor (`processor`), widens each image's placeholder to its number of
visual tokens and batches them (`inputs`), writes grounding boxes per family (`boxes`), decides
which parts train (`freeze`) and generates answers about images (`generate`). `synthetic` makes
the small image tasks the tests and the demo learn on.
"""
