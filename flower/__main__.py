"""``python -m flower [celery options] [flower options]``: the same as ``celery ... flower ...``."""
import sys

from celery.bin.celery import celery, main

from flower.command import celery_option_arity, flower


def split_argv(argv: list[str]) -> list[str]:
    """Put Celery's global options before the ``flower`` sub-command, the rest after it."""
    if 'flower' in argv:
        return list(argv)
    arity = celery_option_arity()
    celery_args, flower_args = [], []
    args = iter(argv)
    for arg in args:
        name, has_value, _ = arg.partition('=')
        if name in arity:
            celery_args.append(arg)
            if arity[name] and not has_value:
                celery_args.append(next(args, ''))
        else:
            flower_args.append(arg)
    return celery_args + ['flower'] + flower_args


def run() -> None:
    celery.add_command(flower)
    sys.argv = [sys.argv[0]] + split_argv(sys.argv[1:])
    sys.exit(main())


if __name__ == '__main__':
    run()
