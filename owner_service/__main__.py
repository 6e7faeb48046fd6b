"""``python -m owner_service``: run one owner worker from environment settings (``KEYFAN_*``)."""

from keyfan.owner.run import main

if __name__ == "__main__":
    main()
