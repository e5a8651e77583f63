"""容器和虚拟机 (containers vs VMs): a resource-allocation model (filled in by the chapter's modules)."""
