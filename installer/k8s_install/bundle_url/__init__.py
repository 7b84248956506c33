"""Install a node from a bundle host: fetch what its role needs over verified TLS, check it, then install."""
