"""Tests of the example apps and of the tools that generate them (`jupiter.tools`)."""
