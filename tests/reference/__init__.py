"""Independent reference implementations the app's metrics are checked against (written apart from explorer/)."""
