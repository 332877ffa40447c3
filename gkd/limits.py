"""Upper bounds on the integers that size allocations or loops (seed, widths, heads, epochs, runs)."""

# Upper bounds on the integers that size allocations or loops: far above any real run, low enough that a typo (an
# extra digit or ten) fails here with one line instead of as an overflow or allocator error after data has loaded.
MAX_SEED = 2**32 - 1  # NumPy's seed range; run r uses seed + r (torch takes up to 2**64 - 1)
MAX_WIDTH = 65536     # hidden_channels, position_dim, CNN block widths
MAX_HEADS = 64
MAX_EPOCHS = 10**6
MAX_RUNS = 10**4
INT_LIMITS: dict[str, tuple[int, int]] = {"seed": (0, MAX_SEED), "hidden_channels": (1, MAX_WIDTH),
                                          "position_dim": (1, MAX_WIDTH), "heads": (1, MAX_HEADS),
                                          "epochs": (1, MAX_EPOCHS), "builder_epochs": (1, MAX_EPOCHS),
                                          "runs": (1, MAX_RUNS)}
