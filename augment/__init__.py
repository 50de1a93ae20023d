"""augment: explicit warp fields (affine + elastic) for images, label maps and probability maps."""
