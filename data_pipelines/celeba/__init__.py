"""CelebA trimodal (rgb, normal, sketch): tfds builder from local image folders, and loader."""

from data_pipelines.celeba.celeba import MODALITIES, CelebaTrimodal, resize_and_center_crop
from data_pipelines.celeba.loader import load_celeba
