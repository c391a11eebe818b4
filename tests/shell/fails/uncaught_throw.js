// Must make out/threader exit 1 with the error printed.
throw new TypeError("boom");
