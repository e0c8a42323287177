"""Migration 0009."""

from helpers import DowngradeTester, UpgradeTester

__all__ = ["DowngradeTester", "UpgradeTester"]
