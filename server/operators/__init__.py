"""The operator console's logic: operator accounts of a merchant, passwords, TOTP, signing in with
lockouts, review decisions (optionally four-eyes) and the dashboard's figures. No HTTP here."""
