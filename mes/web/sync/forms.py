"""The spoke's sync page has no forms: syncing runs in the background (or 'mes sync')."""
