"""Model releases: a new model artifact shipped as a new version, admitted by a policy."""
