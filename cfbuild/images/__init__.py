"""From images to features: `cfbuild features` runs a pretrained CNN over a folder of images and
writes, per image, its pooled vector and (with --grid) its last feature map as regions with boxes,
in a features file that `cfbuild coco --features` and `cfbuild vqa --features` read.

Modules: `backbones` (the named networks, their weights and declared preprocessing), `efficientnet_lite`
and `resnet` (networks in plain torch), `files` (listing and decoding images), `featfile` (the
features file, written as it goes and resumable), `extract` (the job). torch and Pillow are needed
here only: `pip install 'cfpairs[images]'`.
"""
