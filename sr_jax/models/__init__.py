"""Networks: generators (RDN), the perceptual VGG, discriminators; ``registry`` builds them from config."""
