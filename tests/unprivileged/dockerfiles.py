"""The Dockerfiles built in the boxes and as root, and their build contexts."""

from __future__ import annotations

BUSYBOX = """\
FROM {base}
RUN echo made > /made && mkdir -p /opt/tool/bin && echo '#!/bin/sh' > /opt/tool/bin/run \
 && chmod 755 /opt/tool/bin/run && touch /opt/special/new /opt/readonly/x
RUN rm /etc/motd && rm -r /var/lib/gone && rm /old/b && echo extra:x:7:7::/:/bin/sh >> /etc/passwd
RUN mkdir /var/cache.new && touch /var/cache.new/fresh && rm -rf /var/cache \
 && mv /var/cache.new /var/cache && rm /opt/special/pipe && mkdir /opt/special/pipe \
 && mkdir -p /srv/data /home/app && touch /srv/data/by-root
RUN ln /old/a /old/c && ln /usr/bin/suid /usr/bin/suid2 && chmod 0600 /etc/shadow \
 && chmod 4711 /opt/tool/bin/run
COPY --chown=app:staff ctx/ /home/app/files/
COPY --chown=1000 one.txt /opt/one.txt
USER app
RUN touch /home/app/by-app && mkdir /home/app/appdir && echo x > /home/app/appdir/f \
 && echo more >> /home/app/files/a.txt && chmod 600 /home/app/appdir/f
USER app:staff
RUN touch /tmp/by-staff && mkdir /srv/data/staffdir && touch /srv/data/staffdir/f
USER root
WORKDIR /work/deep
USER app
WORKDIR /home/app/wd
RUN touch here && ln here here2 && id -u && id -g
"""
GLIBC = """\
FROM {base}
RUN mkdir -p /opt/app/bin /opt/app/data && touch /opt/app/data/a /opt/app/data/b \
 && cp /bin/cat /opt/app/bin/tool && touch /opt/readonly/x
RUN chown -R app:staff /opt/app && chmod 4755 /opt/app/bin/tool && chmod 2770 /opt/app/data \
 && chown 1000:1000 /etc/motd && chmod 600 /etc/motd
RUN rm /etc/shadow && rm -r /var/lib/gone && rm /old/b && mkdir /var/cache.new \
 && touch /var/cache.new/fresh && rm -rf /var/cache && mv /var/cache.new /var/cache \
 && rm /opt/special/pipe && mkdir /opt/special/pipe && mkdir -p /srv/data /home/app \
 && touch /srv/data/by-root
RUN ln /old/a /old/c && ln /opt/app/data/a /opt/app/data/a-link && mknod /opt/app/null c 1 3 \
 && chown 1000:50 /opt/app/null
COPY --chown=app:staff ctx/ /home/app/files/
USER app
RUN touch /home/app/by-app && mkdir /home/app/appdir && echo x > /home/app/appdir/f \
 && chmod 700 /home/app/appdir && echo more >> /home/app/files/a.txt && id -u && id -g
USER app:staff
RUN touch /tmp/by-staff && mkdir /srv/data/staffdir && touch /srv/data/staffdir/f
USER root
RUN chown -R 1000:50 /home/app/appdir && chown root:staff /opt/special/null \
 && stat -c '%n %A %u:%g' /etc/motd /opt/special/null /usr/bin/suid /home/app/files/a.txt
WORKDIR /work/deep
"""
FILES = {"ctx/a.txt": "a\n", "ctx/sub/b.txt": "b\n", "one.txt": "one\n"}
