"""The web dashboard's static files (HTML, vanilla JS modules, and vendor/ built by `make ui`)."""
