"""Migration 0004."""

from helpers import DowngradeTester, UpgradeTester

__all__ = ["DowngradeTester", "UpgradeTester"]
