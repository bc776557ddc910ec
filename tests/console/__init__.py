"""The web console (issue 16), driven in Debian's headless Chromium."""
