"""Networks: RDN (the generator)."""
