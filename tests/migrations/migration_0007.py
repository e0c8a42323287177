"""Migration 0007."""

from helpers import DowngradeTester, UpgradeTester

__all__ = ["DowngradeTester", "UpgradeTester"]
