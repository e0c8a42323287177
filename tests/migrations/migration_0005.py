"""Migration 0005."""

from helpers import DowngradeTester, UpgradeTester

__all__ = ["DowngradeTester", "UpgradeTester"]
