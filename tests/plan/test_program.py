"""Expanding a stage: what each instruction expands, WORKDIR, heredocs, ONBUILD, errors."""

from __future__ import annotations

import pytest

from core.dockerfile.instructions import (
    AddInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    HealthcheckInstruction,
    KeyValue,
    LabelInstruction,
    OnbuildInstruction,
    RunInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
)
from core.dockerfile.parser import parse_dockerfile
from core.errors import DockerfileError
from core.image.config import DEFAULT_PATH
from core.plan import ImageBase, StageBase, StageProgram, expand_stage, plan_build
from tests.plan.conftest import AMD64, PlanOf, ProgramOf, image_config

ENV_LINE = "FROM alpine\nENV NAME=app DIR=/srv VERSION=1.2\n"


def _last(program: StageProgram) -> object:
    return program.steps[-1].instruction


def test_env_values_of_one_line_see_the_previous_environment(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nENV A=1\nENV A=2 B=$A\nENV C=$A\n")
    second = program.steps[1].instruction
    assert isinstance(second, EnvInstruction)
    assert second.env == (KeyValue("A", "2"), KeyValue("B", "1"))
    assert program.steps[2].instruction.env == (KeyValue("C", "2"),)  # type: ignore[union-attr]
    assert program.env["B"] == "1"


def test_env_keys_and_legacy_form_are_expanded(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nENV K=name\nENV ${K}_X=v\nENV LEG $K with space\n")
    assert program.steps[1].instruction.env == (KeyValue("name_X", "v"),)  # type: ignore
    legacy = program.steps[2].instruction
    assert isinstance(legacy, EnvInstruction)
    assert legacy.env == (KeyValue("LEG", "name with space", legacy=True),)


def test_label_user_volume_stopsignal_expose(program_of: ProgramOf) -> None:
    program = program_of(ENV_LINE + 'LABEL "$NAME.version"="${VERSION}" plain=x\n'
                         "USER ${NAME}:$NAME\nVOLUME $DIR/data [\"$DIR\"]\n"
                         "STOPSIGNAL SIG${NAME:+TERM}\nEXPOSE 80 ${VERSION:-x} \"8080\"\n")
    label, user, volume, signal, expose = (step.instruction for step in program.steps[1:])
    assert isinstance(label, LabelInstruction)
    assert label.labels == (KeyValue("app.version", "1.2"), KeyValue("plain", "x"))
    assert isinstance(user, UserInstruction) and user.user == "app:app"
    assert isinstance(volume, VolumeInstruction)
    assert volume.volumes == ("/srv/data", "[/srv]")
    assert isinstance(signal, StopsignalInstruction) and signal.signal == "SIGTERM"
    assert isinstance(expose, ExposeInstruction)
    assert expose.ports == ("80", "1.2", "8080")


def test_expose_splits_expanded_words(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nENV PORTS=\"80/tcp 53/udp\"\nEXPOSE $PORTS\n")
    assert _last(program).ports == ("80/tcp", "53/udp")  # type: ignore[attr-defined]


def test_quoted_words_with_spaces_split_like_buildkit(program_of: ProgramOf) -> None:
    with pytest.raises(DockerfileError, match="matching double-quote") as caught:
        program_of("FROM alpine\nCOPY \"a b\" /dst\n")
    assert caught.value.line == 2


def test_copy_and_add_expansion(program_of: ProgramOf) -> None:
    program = program_of(
        ENV_LINE + "COPY --chown=$NAME:$NAME --chmod=755 --from=alpine:3 $DIR/a \"b\" /$NAME/\n"
        "ADD --checksum=sha256:${VERSION} --chown=${NAME} https://x/$NAME.tgz $DIR\n"
        "COPY --exclude=$NAME *.txt /\n"
    )
    copy, add, excluded = (step.instruction for step in program.steps[1:])
    assert isinstance(copy, CopyInstruction)
    assert (copy.sources, copy.dest, copy.chown, copy.chmod) == (
        ("/srv/a", "b"), "/app/", "app:app", "755")
    assert copy.from_ == "alpine:3"
    assert program.steps[1].source == ImageBase("alpine:3", AMD64)
    assert isinstance(add, AddInstruction)
    assert (add.sources, add.dest, add.checksum, add.chown) == (
        ("https://x/app.tgz",), "/srv", "sha256:1.2", "app")
    assert isinstance(excluded, CopyInstruction) and excluded.excludes == ("$NAME",)


def test_commands_are_not_expanded(program_of: ProgramOf) -> None:
    program = program_of(ENV_LINE + "RUN echo $NAME\nCMD echo $NAME\nENTRYPOINT [\"$NAME\"]\n"
                         "HEALTHCHECK CMD check $NAME\nSHELL [\"/bin/$NAME\"]\n"
                         "ONBUILD RUN echo $NAME\n")
    run, cmd, entrypoint, health, shell, onbuild = program.steps[1:]
    assert isinstance(run.instruction, RunInstruction)
    assert run.instruction.command == ("echo $NAME",)
    assert isinstance(cmd.instruction, CmdInstruction)
    assert cmd.instruction.command == ("echo $NAME",)
    assert isinstance(entrypoint.instruction, EntrypointInstruction)
    assert entrypoint.instruction.command == ("$NAME",)
    assert isinstance(health.instruction, HealthcheckInstruction)
    assert health.instruction.test == ("CMD-SHELL", "check $NAME")
    assert shell.instruction is shell.written
    assert isinstance(onbuild.instruction, OnbuildInstruction)
    assert onbuild.instruction.expression == "RUN echo $NAME"


def test_run_mounts_are_expanded(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine AS deps\nFROM alpine\nENV C=/cache ID=pip\n"
                         "RUN --mount=type=cache,id=$ID,target=$C --mount=from=deps,target=/d "
                         "--mount=type=tmpfs,target=/t make\n")
    step = program.steps[-1]
    run = step.instruction
    assert isinstance(run, RunInstruction)
    cache, bind, tmpfs = run.mounts
    assert tmpfs.type == "tmpfs"
    assert (cache.id, cache.target, cache.needs_expansion) == ("pip", "/cache", False)
    assert bind.from_ == "deps"
    assert step.mount_sources == (None, StageBase(0), None)
    assert dict(step.used) == {"ID": "pip", "C": "/cache"}


def test_unchanged_instructions_are_the_same_objects(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nENV A=1\nLABEL a=b\nUSER root\nRUN true\n")
    assert all(step.instruction is step.written for step in program.steps)


def test_used_and_unset_variables_are_recorded(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG A=1\nCOPY $A${MISSING} /\n")
    step = program.steps[-1]
    assert dict(step.used) == {"A": "1"}
    assert step.unset == {"MISSING"}


def test_workdir_chains_relative_paths(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nENV SUB=lib\nWORKDIR app\nWORKDIR $SUB/../bin\n"
                         "WORKDIR /opt//x/\nWORKDIR ../../../..\nRUN pwd\n")
    paths = [step.instruction.path for step in program.steps
             if isinstance(step.instruction, WorkdirInstruction)]
    assert paths == ["/app", "/app/bin", "/opt/x", "/"]
    assert program.steps[-1].workdir == "/"
    assert program.steps[1].written.path == "app"  # type: ignore[union-attr]


def test_workdir_starts_from_the_base_image(program_of: ProgramOf) -> None:
    base = image_config(working_dir="/usr/src")
    program = program_of("FROM alpine\nRUN a\nWORKDIR app\nCOPY x .\n", base=base)
    assert [step.workdir for step in program.steps] == ["/usr/src", "/usr/src/app",
                                                        "/usr/src/app"]
    assert program.workdir == "/usr/src/app"
    assert program_of("FROM alpine\nRUN a\n").steps[0].workdir == "/"


def test_workdir_carries_over_to_a_child_stage(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine AS a\nWORKDIR /w\nFROM a\nWORKDIR x\n")
    assert program.workdir == "/w/x"


def test_empty_workdir_is_an_error(program_of: ProgramOf) -> None:
    with pytest.raises(DockerfileError) as caught:
        program_of("FROM alpine\nWORKDIR $EMPTY\n")
    assert "cannot normalize empty path" in caught.value.message
    assert caught.value.line == 2


def test_copy_heredoc_is_expanded_unless_the_delimiter_is_quoted(program_of: ProgramOf) -> None:
    program = program_of(
        "FROM alpine\nARG V=1\n"
        "COPY <<EOF /plain\nv=$V 'q' \"dq\" \\$V\nEOF\n"
        "COPY <<'EOF' /quoted\nv=$V\nEOF\n"
        "ADD <<-\"END\" /tabs\n\tv=${V}\n\tEND\n"
    )
    plain, quoted, tabs = (step.instruction for step in program.steps[1:])
    assert isinstance(plain, CopyInstruction)
    assert plain.inline_sources[0].content == "v=1 'q' \"dq\" $V\n"
    assert isinstance(quoted, CopyInstruction)
    assert quoted.inline_sources[0].content == "v=$V\n"
    assert isinstance(tabs, AddInstruction)
    assert tabs.inline_sources[0].content == "v=${V}\n"


def test_run_heredoc_is_left_to_the_shell(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG V=1\nRUN <<EOF\necho $V\nEOF\n")
    run = program.steps[-1].instruction
    assert isinstance(run, RunInstruction)
    assert run.heredocs[0].content == "echo $V\n"
    assert program.steps[-1].env["V"] == "1"


def test_heredoc_body_uses_backslash_even_with_backtick_escape(program_of: ProgramOf) -> None:
    program = program_of("# escape=`\nFROM alpine\nENV V=1\nCOPY <<EOF C:/f\n\\$V `$V\nEOF\n"
                         "COPY `$V $V /d\n")
    heredoc = program.steps[1].instruction
    assert isinstance(heredoc, CopyInstruction)
    assert heredoc.inline_sources[0].content == "$V `1\n"
    copy = program.steps[2].instruction
    assert isinstance(copy, CopyInstruction)
    assert copy.sources == ("$V", "1")


def test_environment_starts_from_the_base_config(program_of: ProgramOf) -> None:
    base = image_config(env=("PATH=/custom", "LANG=C.UTF-8", "EMPTY="))
    program = program_of("FROM alpine\nENV P=$PATH:$LANG$EMPTY\n", base=base)
    assert _last(program).env == (KeyValue("P", "/custom:C.UTF-8"),)  # type: ignore
    assert dict(program.steps[0].env) == {"PATH": "/custom", "LANG": "C.UTF-8", "EMPTY": ""}


def test_default_path_when_the_base_has_none(program_of: ProgramOf) -> None:
    assert program_of("FROM scratch\nRUN x\n").steps[0].env == {"PATH": DEFAULT_PATH}
    base = image_config(env=("A=1",))
    assert program_of("FROM alpine\nRUN x\n", base=base).steps[0].env["PATH"] == DEFAULT_PATH


def test_onbuild_triggers_run_first(program_of: ProgramOf) -> None:
    base = image_config(on_build=("ARG V=trigger", "ENV FROM_TRIGGER=$V",
                                  "COPY <<EOF /x\n$V\nEOF"))
    program = program_of("FROM alpine\nRUN echo\n", base=base)
    assert program.triggers == base.config.on_build
    assert [step.onbuild for step in program.steps] == [True, True, True, False]
    assert program.steps[1].instruction.env == (  # type: ignore[union-attr]
        KeyValue("FROM_TRIGGER", "trigger"),)
    heredoc = program.steps[2].instruction
    assert isinstance(heredoc, CopyInstruction)
    assert heredoc.inline_sources[0].content == "trigger\n"
    assert all(step.written.span.start_line == 1 for step in program.steps[:3])
    assert program.steps[3].env["FROM_TRIGGER"] == "trigger"


def test_child_stage_runs_its_parent_stage_onbuild_lines(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine AS base\nONBUILD ENV X=1\nONBUILD RUN make\nFROM base\n")
    parent_config = image_config(on_build=("ENV X=1", "RUN make"))
    program = expand_stage(plan.stage(1), base_config=parent_config, build_args={},
                           global_args=plan.global_args)
    assert [step.instruction.keyword for step in program.steps] == ["ENV", "RUN"]
    assert program.steps[1].env["X"] == "1"


@pytest.mark.parametrize(("trigger", "message"), [
    ("ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM alpine", "FROM isn't allowed as an ONBUILD trigger"),
    ("MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("COPPY a b", "unknown instruction: COPPY"),
    ("ENV A=${B:?unset}", "unset"),
    ("COPY --from=later / /", 'cannot copy from stage "later"'),
    ("", "file with no instructions"),
])
def test_trigger_errors_point_at_from(program_of: ProgramOf, trigger: str,
                                      message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        program_of("FROM alpine AS first\nRUN x\nFROM alpine AS later\n", stage=0,
                   base=image_config(on_build=(trigger,)))
    assert message in caught.value.message
    assert caught.value.line == 1
    assert caught.value.source_line == "FROM alpine AS first"


@pytest.mark.parametrize(("line", "message"), [
    ("ENV A=${NOPE:?must_be_set}", "NOPE: must_be_set"),
    ("LABEL a=${x", "missing '}'"),
    ("VOLUME $EMPTY", "VOLUME specified can not be an empty string"),
    ("RUN --mount=type=cache,target=$NOPE,uid=${NOPE:?uid} true", "uid"),
    ("COPY --from=later / /", 'it needs to be defined before current stage "stage-0"'),
    ("ARG X=${Y:?y_missing}", "y_missing"),
])
def test_expansion_errors_point_at_the_instruction(line: str, message: str) -> None:
    text = f"FROM alpine\nRUN ok\n{line}\nRUN later\nFROM alpine AS later\n"
    plan = plan_build(parse_dockerfile(text), build_args={}, target="later",
                      build_platform=AMD64, target_platform=AMD64)
    with pytest.raises(DockerfileError) as caught:
        expand_stage(plan.stage(0), base_config=None, build_args={},
                     global_args=plan.global_args)
    assert message in caught.value.message
    assert caught.value.line == 3
    assert caught.value.source_line == line
    assert caught.value.file == "Dockerfile"


def test_multi_line_instruction_error_spans_its_lines(program_of: ProgramOf) -> None:
    with pytest.raises(DockerfileError) as caught:
        program_of("FROM alpine\nCOPY <<EOF ${DEST:?dest}\nbody\nEOF\n")
    assert (caught.value.line, caught.value.end_line) == (2, 4)
    assert caught.value.source_line == "COPY <<EOF ${DEST:?dest}"


def test_stage_program_state_at_the_end(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG A=1\nENV B=2\nWORKDIR /w\n", build_args={"A": "x"})
    assert program.env["A"] == "x" and program.env["B"] == "2"
    assert [arg.name for arg in program.args] == ["A"]
    assert program.workdir == "/w"
    assert program.consumed_build_args == {"A"}
    assert program.triggers == ()
