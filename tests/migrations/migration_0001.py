"""Migration 0001."""

from helpers import DowngradeTester, UpgradeTester

__all__ = ["DowngradeTester", "UpgradeTester"]
