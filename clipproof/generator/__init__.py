"""The reference video generator: a diffusion transformer on spacetime patches (diffusers'
Latte and Wan transformers), trained here, whose every output is signed as AI-generated."""
