"""Training: pretraining, fine-tuning and evaluation protocols on PyTorch Lightning."""
