"""``--help`` texts of the modelled applets, as busybox 1.35.0 (Debian's busybox-static) prints them.

Generated once from ``busybox APPLET --help``; printed (to stderr, exit 1) on a usage error.
"""

from __future__ import annotations

BANNER = "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary."

USAGE: dict[str, str] = {
    'cat': 'Usage: cat [-nbvteA] [FILE]...\n\nPrint FILEs to stdout\n\n\t-n\tNumber output lines\n\t-b\tNumber nonempty lines\n\t-v\tShow nonprinting characters as ^x or M-x\n\t-t\t...and tabs as ^I\n\t-e\t...and end lines with $\n\t-A\tSame as -vte\n',
    'ls': 'Usage: ls [-1AaCxdLHRFplinshrSXvctu] [-w WIDTH] [FILE]...\n\nList directory contents\n\n\t-1\tOne column output\n\t-a\tInclude names starting with .\n\t-A\tLike -a, but exclude . and ..\n\t-x\tList by lines\n\t-d\tList directory names, not contents\n\t-L\tFollow symlinks\n\t-H\tFollow symlinks on command line\n\t-R\tRecurse\n\t-p\tAppend / to directory names\n\t-F\tAppend indicator (one of */=@|) to names\n\t-l\tLong format\n\t-i\tList inode numbers\n\t-n\tList numeric UIDs and GIDs instead of names\n\t-s\tList allocated blocks\n\t-lc\tList ctime\n\t-lu\tList atime\n\t--full-time\tList full date/time\n\t-h\tHuman readable sizes (1K 243M 2G)\n\t--group-directories-first\n\t-S\tSort by size\n\t-X\tSort by extension\n\t-v\tSort by version\n\t-t\tSort by mtime\n\t-tc\tSort by ctime\n\t-tu\tSort by atime\n\t-r\tReverse sort order\n\t-w N\tFormat N columns wide\n\t--color[={always,never,auto}]\n',
    'mkdir': 'Usage: mkdir [-m MODE] [-p] DIRECTORY...\n\nCreate DIRECTORY\n\n\t-m MODE\tMode\n\t-p\tNo error if exists; make parent directories as needed\n',
    'rm': 'Usage: rm [-irf] FILE...\n\nRemove (unlink) FILEs\n\n\t-i\tAlways prompt before removing\n\t-f\tNever prompt\n\t-R,-r\tRecurse\n',
    'rmdir': 'Usage: rmdir [-p] DIRECTORY...\n\nRemove DIRECTORY if it is empty\n\n\t-p\tInclude parents\n\t--ignore-fail-on-non-empty\n',
    'touch': "Usage: touch [-cham] [-d DATE] [-t DATE] [-r FILE] FILE...\n\nUpdate mtime of FILEs\n\n\t-c\tDon't create files\n\t-h\tDon't follow links\n\t-a\tChange only atime\n\t-m\tChange only mtime\n\t-d DT\tDate/time to use\n\t-t DT\tDate/time to use\n\t-r FILE\tUse FILE's date/time\n",
    'cp': "Usage: cp [-arPLHpfinlsTu] SOURCE DEST\nor: cp [-arPLHpfinlsu] SOURCE... { -t DIRECTORY | DIRECTORY }\n\nCopy SOURCEs to DEST\n\n\t-a\tSame as -dpR\n\t-R,-r\tRecurse\n\t-d,-P\tPreserve symlinks (default if -R)\n\t-L\tFollow all symlinks\n\t-H\tFollow symlinks on command line\n\t-p\tPreserve file attributes if possible\n\t-f\tOverwrite\n\t-i\tPrompt before overwrite\n\t-n\tDon't overwrite\n\t-l,-s\tCreate (sym)links\n\t-T\tRefuse to copy if DEST is a directory\n\t-t DIR\tCopy all SOURCEs into DIR\n\t-u\tCopy only newer files\n",
    'mv': "Usage: mv [-finT] SOURCE DEST\nor: mv [-fin] SOURCE... { -t DIRECTORY | DIRECTORY }\n\nRename SOURCE to DEST, or move SOURCEs to DIRECTORY\n\n\t-f\tDon't prompt before overwriting\n\t-i\tInteractive, prompt before overwrite\n\t-n\tDon't overwrite an existing file\n\t-T\tRefuse to move if DEST is a directory\n\t-t DIR\tMove all SOURCEs into DIR\n",
    'ln': "Usage: ln [-sfnbtv] [-S SUF] TARGET... LINK|DIR\n\nCreate a link LINK or DIR/TARGET to the specified TARGET(s)\n\n\t-s\tMake symlinks instead of hardlinks\n\t-f\tRemove existing destinations\n\t-n\tDon't dereference symlinks - treat like normal file\n\t-b\tMake a backup of the target (if exists) before link operation\n\t-S SUF\tUse suffix instead of ~ when making backup files\n\t-T\tTreat LINK as a file, not DIR\n\t-v\tVerbose\n",
    'chmod': 'Usage: chmod [-Rcvf] MODE[,MODE]... FILE...\n\nMODE is octal number (bit pattern sstrwxrwxrwx) or [ugoa]{+|-|=}[rwxXst]\n\n\t-R\tRecurse\n\t-c\tList changed files\n\t-v\tVerbose\n\t-f\tHide errors\n',
    'pwd': 'Usage: pwd\n\nPrint the full filename of the current working directory\n',
    'id': 'Usage: id [-ugGnr] [USER]\n\nPrint information about USER or the current user\n\n\t-u\tUser ID\n\t-g\tGroup ID\n\t-G\tSupplementary group IDs\n\t-n\tPrint names instead of numbers\n\t-r\tPrint real ID instead of effective ID\n',
    'hostname': "Usage: hostname [-sidf] [HOSTNAME | -F FILE]\n\nShow or set hostname or DNS domain name\n\n\t-s\tShort\n\t-i\tAddresses for the hostname\n\t-d\tDNS domain name\n\t-f\tFully qualified domain name\n\t-F FILE\tUse FILE's content as hostname\n",
    'env': 'Usage: env [-i0] [-u NAME]... [-] [NAME=VALUE]... [PROG ARGS]\n\nPrint current environment or run PROG after setting up environment\n\n\t-, -i\tStart with empty environment\n\t-0\tNUL terminated output\n\t-u NAME\tRemove variable from environment\n',
    'sh': "Usage: sh [-il] [-|+Cabefmnuvx] [-|+o OPT]... [-c 'SCRIPT' [ARG0 ARGS] | FILE ARGS | -s ARGS]\n\nUnix shell interpreter\n",
    'sleep': 'Usage: sleep [N]...\n\nPause for a time equal to the total of the args given, where each arg can\nhave an optional suffix of (s)econds, (m)inutes, (h)ours, or (d)ays\n',
    'wc': 'Usage: wc [-cmlwL] [FILE]...\n\nCount lines, words, and bytes for FILEs (or stdin)\n\n\t-c\tCount bytes\n\t-m\tCount characters\n\t-l\tCount newlines\n\t-w\tCount words\n\t-L\tPrint longest line length\n',
    'head': 'Usage: head [OPTIONS] [FILE]...\n\nPrint first 10 lines of FILEs (or stdin).\nWith more than one FILE, precede each with a filename header.\n\n\t-n N[bkm]\tPrint first N lines\n\t-n -N[bkm]\tPrint all except N last lines\n\t-c [-]N[bkm]\tPrint first N bytes\n\t\t\t(b:*512 k:*1024 m:*1024^2)\n\t-q\t\tNever print headers\n\t-v\t\tAlways print headers\n',
    'grep': "Usage: grep [-HhnlLoqvsrRiwFEz] [-m N] [-A|B|C N] { PATTERN | -e PATTERN... | -f FILE... } [FILE]...\n\nSearch for PATTERN in FILEs (or stdin)\n\n\t-H\tAdd 'filename:' prefix\n\t-h\tDo not add 'filename:' prefix\n\t-n\tAdd 'line_no:' prefix\n\t-l\tShow only names of files that match\n\t-L\tShow only names of files that don't match\n\t-c\tShow only count of matching lines\n\t-o\tShow only the matching part of line\n\t-q\tQuiet. Return 0 if PATTERN is found, 1 otherwise\n\t-v\tSelect non-matching lines\n\t-s\tSuppress open and read errors\n\t-r\tRecurse\n\t-R\tRecurse and dereference symlinks\n\t-i\tIgnore case\n\t-w\tMatch whole words only\n\t-x\tMatch whole lines only\n\t-F\tPATTERN is a literal (not regexp)\n\t-E\tPATTERN is an extended regexp\n\t-z\tNUL terminated input\n\t-m N\tMatch up to N times per file\n\t-A N\tPrint N lines of trailing context\n\t-B N\tPrint N lines of leading context\n\t-C N\tSame as '-A N -B N'\n\t-e PTRN\tPattern to match\n\t-f FILE\tRead pattern from file\n",
    'printf': 'Usage: printf FORMAT [ARG]...\n\nFormat and print ARG(s) according to FORMAT (a-la C printf)\n',
    'mkfifo': 'Usage: mkfifo [-m MODE] NAME\n\nCreate named pipe\n\n\t-m MODE\tMode (default a=rw)\n',
    'mknod': 'Usage: mknod [-m MODE] NAME TYPE [MAJOR MINOR]\n\nCreate a special file (block, character, or pipe)\n\n'
             '\t-m MODE\tCreation mode (default a=rw)\nTYPE:\n\tb\tBlock device\n\tc or u\tCharacter device\n'
             '\tp\tNamed pipe (MAJOR MINOR must be omitted)\n',
}

#: Every applet of that build (``busybox --list``): names the model recognises even where it does not implement them.
BUSYBOX_APPLETS: frozenset[str] = frozenset({
    '[', '[[', 'acpid', 'adjtimex', 'ar', 'arch', 'arp', 'arping', 'ascii', 'ash', 'awk', 'base64',
    'basename', 'bc', 'blkdiscard', 'blockdev', 'brctl', 'bunzip2', 'busybox', 'bzcat', 'bzip2', 'cal', 'cat',
    'chgrp', 'chmod', 'chown', 'chroot', 'chvt', 'clear', 'cmp', 'cp', 'cpio', 'crc32', 'crond', 'crontab',
    'cttyhack', 'cut', 'date', 'dc', 'dd', 'deallocvt', 'depmod', 'devmem', 'df', 'diff', 'dirname', 'dmesg',
    'dnsdomainname', 'dos2unix', 'dpkg', 'dpkg-deb', 'du', 'dumpkmap', 'dumpleases', 'echo', 'ed', 'egrep',
    'env', 'expand', 'expr', 'factor', 'fallocate', 'false', 'fatattr', 'fdisk', 'fgrep', 'find', 'findfs',
    'fold', 'free', 'freeramdisk', 'fsfreeze', 'fstrim', 'ftpget', 'ftpput', 'getopt', 'getty', 'grep',
    'groups', 'gunzip', 'gzip', 'halt', 'head', 'hexdump', 'hostid', 'hostname', 'httpd', 'hwclock',
    'i2cdetect', 'i2cdump', 'i2cget', 'i2cset', 'i2ctransfer', 'id', 'ifconfig', 'ifdown', 'ifup', 'init',
    'insmod', 'ionice', 'ip', 'ipcalc', 'ipneigh', 'kill', 'killall', 'klogd', 'last', 'less', 'link',
    'linux32', 'linux64', 'linuxrc', 'ln', 'loadfont', 'loadkmap', 'logger', 'login', 'logname', 'logread',
    'losetup', 'ls', 'lsmod', 'lsscsi', 'lzcat', 'lzma', 'lzop', 'md5sum', 'mdev', 'microcom', 'mim', 'mkdir',
    'mkdosfs', 'mke2fs', 'mkfifo', 'mknod', 'mkpasswd', 'mkswap', 'mktemp', 'modinfo', 'modprobe', 'more',
    'mount', 'mt', 'mv', 'nameif', 'nc', 'netstat', 'nl', 'nologin', 'nproc', 'nsenter', 'nslookup', 'nuke',
    'od', 'openvt', 'partprobe', 'passwd', 'paste', 'patch', 'pidof', 'ping', 'ping6', 'pivot_root',
    'poweroff', 'printf', 'ps', 'pwd', 'rdate', 'readlink', 'realpath', 'reboot', 'renice', 'reset', 'resume',
    'rev', 'rm', 'rmdir', 'rmmod', 'route', 'rpm', 'rpm2cpio', 'run-init', 'run-parts', 'sed', 'seq',
    'setkeycodes', 'setpriv', 'setsid', 'sh', 'sha1sum', 'sha256sum', 'sha3sum', 'sha512sum', 'shred', 'shuf',
    'sleep', 'sort', 'ssl_client', 'start-stop-daemon', 'stat', 'strings', 'stty', 'su', 'sulogin', 'svc',
    'svok', 'swapoff', 'swapon', 'switch_root', 'sync', 'sysctl', 'syslogd', 'tac', 'tail', 'tar', 'taskset',
    'tc', 'tee', 'telnet', 'telnetd', 'test', 'tftp', 'time', 'timeout', 'top', 'touch', 'tr', 'traceroute',
    'traceroute6', 'true', 'truncate', 'ts', 'tty', 'tunctl', 'ubirename', 'udhcpc', 'udhcpd', 'uevent',
    'umount', 'uname', 'uncompress', 'unexpand', 'uniq', 'unix2dos', 'unlink', 'unlzma', 'unshare', 'unxz',
    'unzip', 'uptime', 'usleep', 'uudecode', 'uuencode', 'vconfig', 'vi', 'w', 'watch', 'watchdog', 'wc',
    'wget', 'which', 'who', 'whoami', 'xargs', 'xxd', 'xz', 'xzcat', 'yes', 'zcat',
})
