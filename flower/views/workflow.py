"""The workflow page (``/workflow/<task id>``) and the JSON it draws (``/workflow-data/``)."""
from flower.views import BaseHandler, JsonPageHandler, RequestError
from flower.workflow_lookup import find_workflow


class WorkflowView(BaseHandler):
    """The page is a frame: its script fetches the graph and keeps it up to date."""

    def get(self, task_id: str) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            raise RequestError(404, f"Unknown task '{task_id}'")
        self.render('workflow.html', task_id=task_id, task_name=task.name, active_page='tasks')


class WorkflowData(JsonPageHandler):
    """What ``/api/workflow/<id>`` answers, under the pages' access rules."""

    async def get(self, task_id: str) -> None:
        workflow = await find_workflow(self.tasks, self.capp, task_id)
        if workflow is None:
            raise RequestError(404, f"Unknown task '{task_id}'")
        self.write(workflow)
