"""Hardware runtimes: the interface (`base`, below the plugin manager, so runtime plugins and the
built-in CPU runtime can subclass it) apart from `--device` selection (`selection`, which asks
the plugin manager's registry and so sits above it)."""
